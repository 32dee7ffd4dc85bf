#!/usr/bin/python3
"""Renders the language test pages: known text (ground truth by construction, gt/<name>.txt)
drawn in a free font onto a white page, 8-bit gray PNG, 300 DPI. Run once; the PNGs are
committed (CI needs no fonts). Debian: python3-pil, fonts-dejavu-core, fonts-noto-cjk.
    /usr/bin/python3 testdata/ocr/langs/render.py    (from the repository root)
"""
from PIL import Image, ImageDraw, ImageFont

PAGES = [
    # name, font file, index in a collection, size in pixels
    ("deu_grundgesetz", "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf", 0, 42),
    ("fra_ddhc", "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf", 0, 42),
    ("jpn_neko", "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 0, 64),  # 0: Noto Sans CJK JP
]

for name, path, index, size in PAGES:
    lines = open(f"testdata/ocr/gt/{name}.txt", encoding="utf-8").read().splitlines()
    font = ImageFont.truetype(path, size, index=index)
    width = max(font.getbbox(line)[2] for line in lines) + 240
    step = int(size * 1.7)
    page = Image.new("L", (width, step * len(lines) + 240), 255)
    draw = ImageDraw.Draw(page)
    for i, line in enumerate(lines):
        draw.text((120, 120 + i * step), line, font=font, fill=0)
    page.save(f"testdata/ocr/langs/{name}.png", dpi=(300, 300), optimize=True)
    print(name, page.size)
