"""A daily bar chart drawn on the server as SVG (no chart library, nothing downloaded).

One chart per currency: for each day a gross bar and a refunds bar, and the net as a
line. Each day's group carries its figures as ``data-*`` attributes (minor units) and a
``<title>`` tooltip, so the picture, the tooltip and the numbers cannot disagree.
"""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape

from ..money import format_money

WIDTH = 720
HEIGHT = 240
PAD_LEFT = 70
PAD_BOTTOM = 28
PAD_TOP = 12
PLOT_W = WIDTH - PAD_LEFT - 8
PLOT_H = HEIGHT - PAD_TOP - PAD_BOTTOM


def bar_chart(currency: str, days: list[date], rows: dict[date, dict[str, int]]) -> Markup:
    """The SVG for one currency: ``rows[day]`` holds ``gross``, ``refunds`` and ``net``."""
    zero = {"gross": 0, "refunds": 0, "net": 0}
    values = [rows.get(day, zero) for day in days]
    top = max([v["gross"] for v in values] + [v["refunds"] for v in values] + [1])
    slot = PLOT_W / max(len(days), 1)
    bar = max(slot * 0.38, 1)
    base_y = PAD_TOP + PLOT_H

    def y_of(amount: int) -> float:
        return base_y - (max(amount, 0) / top) * PLOT_H

    total = {k: sum(v[k] for v in values) for k in zero}
    cur = currency.upper()
    title = f"Last {len(days)} days in {cur}"
    desc = (
        f"Gross {format_money(total['gross'], currency)}, refunds "
        f"{format_money(total['refunds'], currency)}, net {format_money(total['net'], currency)}."
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="revenue-chart" viewBox="0 0 {WIDTH} '
        f'{HEIGHT}" role="img" aria-labelledby="chart-{cur}-title chart-{cur}-desc" '
        f'data-currency="{escape(currency)}" data-total-gross="{total["gross"]}" '
        f'data-total-refunds="{total["refunds"]}" data-total-net="{total["net"]}">',
        f'<title id="chart-{cur}-title">{escape(title)}</title>',
        f'<desc id="chart-{cur}-desc">{escape(desc)}</desc>',
    ]
    # Axis with the top value and zero.
    parts.append(
        f'<line class="axis" x1="{PAD_LEFT}" y1="{base_y}" x2="{WIDTH - 8}" y2="{base_y}" '
        'stroke="#b9ada2"/>'
    )
    parts.append(
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 10}" text-anchor="end" font-size="11" '
        f'fill="#6f625a">{escape(format_money(top, currency) if top > 1 else "")}</text>'
    )
    parts.append(
        f'<text x="{PAD_LEFT - 6}" y="{base_y}" text-anchor="end" font-size="11" '
        f'fill="#6f625a">0</text>'
    )
    net_points = []
    for i, (day, v) in enumerate(zip(days, values, strict=True)):
        x = PAD_LEFT + i * slot + slot * 0.1
        tip = (
            f"{day.isoformat()}: gross {format_money(v['gross'], currency)}, refunds "
            f"{format_money(v['refunds'], currency)}, net {format_money(v['net'], currency)}"
        )
        parts.append(
            f'<g class="day" data-date="{day.isoformat()}" data-gross="{v["gross"]}" '
            f'data-refunds="{v["refunds"]}" data-net="{v["net"]}"><title>{escape(tip)}</title>'
            f'<rect class="gross" x="{x:.1f}" y="{y_of(v["gross"]):.1f}" width="{bar:.1f}" '
            f'height="{base_y - y_of(v["gross"]):.1f}" fill="#3f6b4a"/>'
            f'<rect class="refunds" x="{x + bar:.1f}" y="{y_of(v["refunds"]):.1f}" '
            f'width="{bar:.1f}" height="{base_y - y_of(v["refunds"]):.1f}" fill="#b5653a"/></g>'
        )
        net_points.append(f"{x + bar:.1f},{y_of(v['net']):.1f}")
        if i % 7 == 0 or i == len(days) - 1:
            parts.append(
                f'<text x="{x + bar:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="11" '
                f'fill="#6f625a">{day.strftime("%d %b")}</text>'
            )
    if net_points:
        parts.append(
            f'<polyline class="net" points="{" ".join(net_points)}" fill="none" '
            'stroke="#2b211b" stroke-width="1.5"/>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
