"""Every master screen (X1–X10) as a :class:`~app.masters.fields.MasterSpec`."""

from __future__ import annotations

from typing import Any

from app.auth.models import ROLE_LABELS, Staff
from app.customers.postcodes import PREFECTURES
from app.masters.fields import Field, MasterSpec, check_period
from app.masters.models import (
    CAMPAIGN_KINDS,
    SURVEY_ANSWER_KINDS,
    Ad,
    Campaign,
    CancelReason,
    Carrier,
    Companion,
    Product,
    ProductCategory,
    Rank,
    SetItem,
    ShipOrigin,
    ShippingRate,
    Survey,
    SurveyChoice,
    SurveyQuestion,
)
from app.responses.models import Faq

ACTIVE = Field("active", "有効", "bool", default=True)
TAX_CLASSES = (("standard", "標準税率 10%"), ("reduced", "軽減税率 8%"))
CANCEL_KINDS = (("cancel", "解約"), ("return", "返品"), ("both", "解約・返品"))


def _campaign_rules(v: dict[str, Any]) -> dict[str, str]:
    errors = check_period("starts_on", "ends_on", "終了日")(v)
    kind = v.get("kind")
    if kind == "new_customer" and not v.get("discount_amount"):
        errors["discount_amount"] = "新規顧客値引きは値引額（円）を入力してください。"
    if kind == "present":
        if v.get("product_id") is None:
            errors["product_id"] = (
                "対象商品コードを入力してください（この商品の購入でプレゼント）。"
            )
        if v.get("present_product_id") is None:
            errors["present_product_id"] = "プレゼント商品コードを入力してください。"
        if not v.get("present_quantity"):
            errors["present_quantity"] = "プレゼント数は1以上で入力してください。"
    if kind == "rank_discount":
        if v.get("rank_id") is None:
            errors["rank_id"] = "ランク割引は対象ランクを選んでください。"
        if not v.get("discount_amount") and not v.get("discount_percent"):
            errors["discount_amount"] = "値引額（円）か値引率（%）を入力してください。"
        elif v.get("discount_amount") and v.get("discount_percent"):
            errors["discount_percent"] = "値引額と値引率はどちらか一方だけ入力してください。"
    return errors


def _same_product(a: str, b: str, label: str) -> Any:
    def check(v: dict[str, Any]) -> dict[str, str]:
        if v.get(a) is not None and v.get(a) == v.get(b):
            return {b: f"{label}に同じ商品は指定できません。"}
        return {}

    return check


SPECS: tuple[MasterSpec, ...] = (
    MasterSpec(
        key="staff",
        title="担当者マスタ",
        model=Staff,
        group="担当者",
        summary="オペレータ・営業担当のログイン、役割、内線、回線（チーム）",
        keys=("login",),
        search=("login", "name", "name_kana", "extension"),
        order_by=("login",),
        fields=(
            Field("login", "ログインID", required=True, max_length=64),
            Field("name", "氏名", required=True),
            Field("name_kana", "氏名かな", in_list=False),
            Field(
                "role",
                "役割",
                "choice",
                required=True,
                choices=tuple((r.value, label) for r, label in ROLE_LABELS.items()),
            ),
            Field("extension", "内線", max_length=32),
            Field(
                "allowed_extensions",
                "使える内線",
                max_length=255,
                default="",
                in_list=False,
                help="ログイン時に登録の内線のほかに選べる内線（カンマ区切り）。"
                "空欄なら登録の内線だけ、* ならどの内線でも。"
                "役割・内線・使える内線は管理者だけが変更できます。",
            ),
            Field("line", "回線・チーム", max_length=32, default="main"),
            Field(
                "password",
                "パスワード",
                "password",
                in_list=False,
                help="管理者だけが設定します（8文字以上）。入力すると再設定になり、"
                "本人は次のログインで新しいパスワードに変更します。",
            ),
            ACTIVE,
        ),
    ),
    MasterSpec(
        key="ads",
        title="広告マスタ",
        model=Ad,
        group="広告・商品",
        summary="広告（媒体）コード・名称・媒体・期間・費用",
        search=("code", "name", "medium"),
        check=check_period("starts_on", "ends_on", "終了日"),
        fields=(
            Field("code", "広告コード", required=True, max_length=16),
            Field("name", "広告名", required=True),
            Field("medium", "媒体", max_length=32),
            Field("starts_on", "開始日", "date", nullable=True),
            Field("ends_on", "終了日", "date", nullable=True),
            Field("cost", "費用（円）", "int", default=0),
            ACTIVE,
        ),
    ),
    MasterSpec(
        key="categories",
        title="商品分類マスタ",
        model=ProductCategory,
        group="広告・商品",
        summary="商品分類コードと名称",
        fields=(
            Field("code", "分類コード", required=True, max_length=16),
            Field("name", "分類名", required=True),
            ACTIVE,
        ),
    ),
    MasterSpec(
        key="products",
        title="商品マスタ",
        model=Product,
        group="広告・商品",
        summary="商品コード・名称・分類・価格・原価・税区分・定期可・プレゼント・販売期間",
        search=("code", "name", "kana"),
        check=check_period("sale_from", "sale_to", "販売終了日"),
        fields=(
            Field("code", "商品コード", required=True, max_length=32),
            Field("name", "商品名", required=True, max_length=200),
            Field("kana", "商品名かな", max_length=200, in_list=False),
            Field("category_id", "商品分類コード", "ref", ref="categories", nullable=True),
            Field("price", "価格（税抜）", "int", required=True, max=9_999_999),
            Field("cost", "原価", "int", default=0, max=9_999_999),
            Field(
                "tax_class",
                "税区分",
                "choice",
                required=True,
                choices=TAX_CLASSES,
                default="standard",
            ),
            Field("subscribable", "定期可", "bool", default=False),
            Field("is_present", "プレゼント", "bool", default=False),
            Field("sale_from", "販売開始日", "date", nullable=True),
            Field("sale_to", "販売終了日", "date", nullable=True),
            Field("description", "説明", "textarea", max_length=2000, in_list=False),
            ACTIVE,
        ),
    ),
    MasterSpec(
        key="carriers",
        title="配送会社マスタ",
        model=Carrier,
        group="送料・配送",
        summary="配送会社（ヤマト運輸・佐川急便…）",
        fields=(
            Field("code", "配送会社コード", required=True, max_length=16),
            Field("name", "配送会社名", required=True, max_length=64),
            ACTIVE,
        ),
    ),
    MasterSpec(
        key="origins",
        title="発送元地区マスタ",
        model=ShipOrigin,
        group="送料・配送",
        summary="受注の発送元地区（倉庫）。表示順の最初が受注入力の初期値",
        order_by=("sort_order", "code"),
        fields=(
            Field("code", "発送元コード", required=True, max_length=16),
            Field("name", "発送元地区", required=True, max_length=16),
            Field("sort_order", "表示順", "int", default=0, max=999),
            ACTIVE,
        ),
    ),
    MasterSpec(
        key="shipping",
        title="送付先・送料マスタ",
        model=ShippingRate,
        group="送料・配送",
        summary="都道府県×配送会社ごとの送料・代引手数料・配送日数・発送先地区",
        keys=("carrier_id", "prefecture"),
        search=("prefecture", "region"),
        order_by=("carrier_id", "id"),
        display="prefecture",
        retire=False,
        fields=(
            Field("carrier_id", "配送会社コード", "ref", required=True, ref="carriers"),
            Field(
                "prefecture",
                "都道府県",
                "choice",
                required=True,
                choices=tuple((p, p) for p in PREFECTURES),
            ),
            Field("region", "発送先地区", max_length=16),
            Field("fee", "送料（税抜）", "int", required=True, max=999_999),
            Field("cod_fee", "代引手数料（税抜）", "int", default=330, max=999_999),
            Field("lead_days", "配送日数", "int", default=1, max=30),
        ),
    ),
    MasterSpec(
        key="sets",
        title="セット商品マスタ",
        model=SetItem,
        group="広告・商品",
        summary="セット商品とその内容（商品と個数）",
        keys=("set_product_id", "component_id"),
        search=(),
        order_by=("set_product_id", "id"),
        display="id",
        retire=False,
        check=_same_product("set_product_id", "component_id", "セット内容"),
        fields=(
            Field("set_product_id", "セット商品コード", "ref", required=True, ref="products"),
            Field("component_id", "内容商品コード", "ref", required=True, ref="products"),
            Field("quantity", "個数", "int", default=1, min=1, max=999),
        ),
    ),
    MasterSpec(
        key="companions",
        title="同梱商品マスタ",
        model=Companion,
        group="広告・商品",
        summary="A を購入したら必ず B を同梱する組み合わせ",
        keys=("product_id", "companion_id"),
        search=(),
        order_by=("product_id", "id"),
        display="id",
        retire=False,
        check=_same_product("product_id", "companion_id", "同梱商品"),
        fields=(
            Field("product_id", "購入商品コード", "ref", required=True, ref="products"),
            Field("companion_id", "同梱商品コード", "ref", required=True, ref="products"),
            Field("quantity", "個数", "int", default=1, min=1, max=999),
        ),
    ),
    MasterSpec(
        key="faqs",
        title="FAQ管理",
        model=Faq,
        group="対応",
        summary="よくある質問と模範解答（対応入力で検索・挿入）",
        keys=("question",),
        search=("category", "question", "answer", "keywords"),
        order_by=("category", "id"),
        display="question",
        fields=(
            Field("category", "分類", max_length=32),
            Field("question", "質問", "textarea", required=True, max_length=1000),
            Field("answer", "模範解答", "textarea", required=True, max_length=4000),
            Field("keywords", "キーワード", max_length=200, help="空白区切り"),
            ACTIVE,
        ),
    ),
    MasterSpec(
        key="campaigns",
        title="キャンペーン管理",
        model=Campaign,
        group="販促",
        summary="期間限定送料無料・新規顧客値引き・A購入でB同梱・ランク割引",
        search=("code", "name", "note"),
        check=_campaign_rules,
        fields=(
            Field("code", "キャンペーンコード", required=True, max_length=16),
            Field("name", "キャンペーン名", required=True),
            Field(
                "kind",
                "種類",
                "choice",
                required=True,
                choices=tuple(CAMPAIGN_KINDS.items()),
            ),
            Field("starts_on", "開始日", "date", nullable=True, help="空欄は開始日なし"),
            Field("ends_on", "終了日", "date", nullable=True, help="空欄は終了日なし"),
            Field(
                "min_subtotal",
                "条件 商品金額（円以上）",
                "int",
                default=0,
                max=9_999_999,
                help="この金額以上の注文に適用（0 は条件なし）",
            ),
            Field("discount_amount", "値引額（円）", "int", default=0, max=999_999),
            Field("discount_percent", "値引率（%）", "int", default=0, max=100),
            Field("rank_id", "対象ランクコード", "ref", ref="ranks", nullable=True),
            Field("product_id", "対象商品コード", "ref", ref="products", nullable=True),
            Field(
                "present_product_id", "プレゼント商品コード", "ref", ref="products", nullable=True
            ),
            Field("present_quantity", "プレゼント数", "int", default=1, min=0, max=99),
            Field("note", "備考", "textarea", max_length=1000, in_list=False),
            ACTIVE,
        ),
    ),
    MasterSpec(
        key="ranks",
        title="ランクマスタ",
        model=Rank,
        group="販促",
        summary="購入回数・購入金額・最終購入からの日数による顧客ランクの目安",
        order_by=("sort_order", "id"),
        fields=(
            Field("code", "ランクコード", required=True, max_length=16),
            Field("name", "ランク名", required=True, max_length=32),
            Field("sort_order", "順位", "int", default=0, max=999, help="1 が最上位"),
            Field("min_orders", "購入回数（回以上）", "int", default=0, max=99_999),
            Field("min_amount", "購入金額（円以上・税込）", "int", default=0),
            Field(
                "max_recency_days",
                "最終購入から（日以内）",
                "int",
                nullable=True,
                max=99_999,
                help="空欄は条件なし",
            ),
            ACTIVE,
        ),
    ),
    MasterSpec(
        key="cancel_reasons",
        title="解約(返品)理由マスタ",
        model=CancelReason,
        group="対応",
        summary="定期の解約・返品の理由",
        order_by=("sort_order", "code"),
        fields=(
            Field("code", "理由コード", required=True, max_length=16),
            Field("name", "理由", required=True),
            Field("kind", "区分", "choice", required=True, choices=CANCEL_KINDS, default="both"),
            Field("sort_order", "表示順", "int", default=0, max=999),
            ACTIVE,
        ),
    ),
    MasterSpec(
        key="surveys",
        title="アンケートマスタ",
        model=Survey,
        group="アンケート",
        summary="アンケート（期間）",
        check=check_period("starts_on", "ends_on", "終了日"),
        fields=(
            Field("code", "アンケートコード", required=True, max_length=16),
            Field("name", "アンケート名", required=True),
            Field("starts_on", "開始日", "date", nullable=True),
            Field("ends_on", "終了日", "date", nullable=True),
            ACTIVE,
        ),
    ),
    MasterSpec(
        key="survey_questions",
        title="アンケート設問",
        model=SurveyQuestion,
        group="アンケート",
        summary="アンケートの設問（読み上げる文言と回答方法）",
        search=("code", "text"),
        order_by=("survey_id", "position", "id"),
        display="text",
        fields=(
            Field("survey_id", "アンケートコード", "ref", required=True, ref="surveys"),
            Field("code", "設問コード", required=True, max_length=16),
            Field("position", "順番", "int", default=0, max=999),
            Field("text", "設問", "textarea", required=True, max_length=1000),
            Field(
                "answer_kind",
                "回答方法",
                "choice",
                required=True,
                choices=tuple(SURVEY_ANSWER_KINDS.items()),
                default="single",
            ),
            ACTIVE,
        ),
    ),
    MasterSpec(
        key="survey_choices",
        title="アンケート回答選択肢",
        model=SurveyChoice,
        group="アンケート",
        summary="設問ごとの回答の選択肢",
        keys=("question_id", "position"),
        search=("label",),
        order_by=("question_id", "position"),
        display="label",
        fields=(
            Field("question_id", "設問コード", "ref", required=True, ref="survey_questions"),
            Field("position", "順番", "int", required=True, max=999),
            Field("label", "選択肢", required=True),
            ACTIVE,
        ),
    ),
)

BY_KEY: dict[str, MasterSpec] = {s.key: s for s in SPECS}
GROUPS: tuple[str, ...] = ("担当者", "広告・商品", "送料・配送", "販促", "対応", "アンケート")
