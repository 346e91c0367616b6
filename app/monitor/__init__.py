"""顧客モニタ: the header and tab frame every monitor tab is shown in."""
