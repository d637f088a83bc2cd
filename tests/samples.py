"""Sample files of every supported format, generated (never checked in)."""

from __future__ import annotations

import io
import json

import yaml
from docx import Document
from fpdf import FPDF

MARKDOWN = """# Handbook

The handbook explains how the team works.

## Onboarding

New people get a laptop on day one.

```python
def welcome(name):
    return f"hello {name}"
```

## Holidays

Everyone takes twenty-five days of paid leave.
"""

HTML = """<!doctype html><html><head><title>Kettle manual</title></head><body>
<nav><a href="/">Home</a> <a href="/shop">Shop</a></nav>
<main><h1>Kettle manual</h1><p>Fill the kettle to the <b>max</b> line.</p>
<h2>Descaling</h2><p>Descale monthly with citric acid.</p>
<pre><code class="language-bash">descale --acid citric --minutes 15</code></pre></main>
<footer>Copyright ACME</footer></body></html>"""

PYTHON = '''"""Billing helpers."""

import math

TAX_RATE = 0.2


def net_price(gross: float) -> float:
    """Remove tax from a gross price."""
    return gross / (1 + TAX_RATE)


class Invoice:
    def __init__(self, total: float) -> None:
        self.total = total

    def rounded(self) -> int:
        return math.ceil(self.total)
'''

SOURCES = {
    "app.js": "import x from 'y';\n\nexport function greet(name) {\n  return `hi ${name}`;\n}\n",
    "main.go": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hi")\n}\n',
    "lib.rs": "use std::io;\n\npub fn parse(input: &str) -> usize {\n    input.len()\n}\n",
    "Main.java": "public class Main {\n    public static void main(String[] a) {\n"
    '        System.out.println("hi");\n    }\n}\n',
    "util.c": "#include <stdio.h>\n\nint add(int a, int b) {\n    return a + b;\n}\n",
    "types.ts": "export interface User {\n  id: string;\n}\n\n"
    "export const admin = (u: User) => u.id;\n",
}

DATA = {"service": {"name": "billing", "port": 8080}, "owners": ["ana", "li"]}
CSV = "name,role,team\nAna,engineer,billing\nLi,designer,search\n"


def pdf_bytes(pages: list[tuple[str, str]]) -> bytes:
    """A real PDF: one page per (section title, text), the titles in its outline."""
    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for title, text in pages:
        pdf.add_page()
        pdf.start_section(title)
        pdf.multi_cell(0, 8, title + "\n\n" + text)
    return bytes(pdf.output())


def docx_bytes() -> bytes:
    document = Document()
    document.add_heading("Runbook", level=1)
    document.add_paragraph(
        "This runbook covers incidents: who is paged, how severity is decided, where the "
        "dashboards live and how the incident is closed with a written review afterwards."
    )
    document.add_heading("Paging", level=2)
    document.add_paragraph("Page the on-call engineer through the pager app.")
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "Severity"
    table.cell(0, 1).text = "Response"
    table.cell(1, 0).text = "SEV1"
    table.cell(1, 1).text = "15 minutes"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def json_bytes() -> bytes:
    return json.dumps(DATA).encode()


def yaml_bytes() -> bytes:
    return yaml.safe_dump(DATA).encode()
