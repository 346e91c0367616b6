"""The main menu: every section, who may open it, and whether it is built yet."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class _Staff(Protocol):
    """Who is asking (``app.web.CurrentStaff``): the menu needs only their roles."""

    def has_role(self, *roles: str) -> bool: ...


@dataclass(frozen=True)
class Section:
    key: str
    label: str
    path: str
    roles: tuple[str, ...]
    built: bool
    summary: str


ALL = ("operator", "supervisor", "backoffice", "admin")

SECTIONS: tuple[Section, ...] = (
    Section(
        "customers",
        "顧客モニタ",
        "/customers",
        ALL,
        True,
        "電話番号・氏名・かなで顧客を検索し、顧客モニタで詳細・履歴・受注入力を行います。",
    ),
    Section(
        "duplicates",
        "名寄せ",
        "/customers/duplicates",
        ("supervisor", "backoffice"),
        True,
        "同名・同じ電話番号の顧客を一覧し、重複した顧客を統合します。",
    ),
    Section(
        "orders",
        "受注一覧",
        "/orders",
        ALL,
        True,
        "受付日・伝票区分・配送会社・入力者で受注を一覧します。",
    ),
    Section(
        "subscriptions",
        "定期",
        "/subscriptions",
        ("supervisor", "backoffice"),
        True,
        "定期購入の管理と当日定期発送分の自動出力（定期発送一覧）。",
    ),
    Section(
        "dormant",
        "長期放置顧客",
        "/dormant",
        ("operator", "supervisor"),
        True,
        "一定期間アクションのない顧客の一覧と、架電リスト。",
    ),
    Section(
        "board",
        "ボード",
        "/board",
        ("supervisor",),
        True,
        "全回線・全オペレータの状態と本日の対応状況をリアルタイムに表示します。",
    ),
    Section(
        "masters",
        "マスタ",
        "/masters",
        ("backoffice",),
        True,
        "担当者・広告・商品・送料・セット商品・FAQ・キャンペーン・ランクなどのマスタ管理。",
    ),
    Section(
        "reports",
        "集計",
        "/reports",
        ("supervisor", "backoffice"),
        False,
        "広告別・商品別・地区別・担当者別などの集計表と帳票。",
    ),
    Section(
        "data",
        "データ処理",
        "/data",
        ("backoffice",),
        False,
        "送り状データ出力、問合せ番号取り込み、顧客データ取込など。",
    ),
    Section(
        "jobs",
        "ジョブ",
        "/jobs",
        ("backoffice",),
        True,
        "定期受注の作成・ランク再計算などのバックグラウンド処理の進み具合、失敗と再実行。",
    ),
    Section(
        "admin",
        "管理",
        "/admin",
        ("admin",),
        True,
        "ログインユーザー、監査ログ、CTI 接続状態の管理。",
    ),
)


@dataclass(frozen=True)
class MenuItem:
    section: Section
    active: bool


def menu_for(staff: _Staff | None, path: str) -> list[MenuItem]:
    if staff is None:
        return []

    def matches(s: Section) -> bool:
        return path == s.path or path.startswith(s.path + "/")

    # The longest matching path is the active one (名寄せ lives under /customers/).
    best = max((s for s in SECTIONS if matches(s)), key=lambda s: len(s.path), default=None)
    return [MenuItem(s, s is best) for s in SECTIONS if staff.has_role(*s.roles)]
