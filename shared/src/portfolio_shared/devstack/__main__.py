"""``python -m portfolio_shared.devstack``: run the whole system until Ctrl-C (``make run``)."""

from __future__ import annotations

from portfolio_shared.devstack.runner import DevStack

__all__ = ["main"]


def main() -> None:
    raise SystemExit(DevStack().run())


if __name__ == "__main__":
    main()
