"""The report's ``index.html``: figures linked (or embedded), tables sortable, no network.

By default a figure is an ``<img>`` with a relative link to its file in the
report folder, so the page stays small (about 70 kB at 56 activations,
against 4.7 MB with every figure inside it, and 11.7 MB on a real
53-activation run) and the folder is what you move or publish. Given no
folder to link from, :func:`image_html` embeds the figure as a base64 data
URI instead, and the page is one self-contained file. The sorting script
and styles are inline either way, so the page works when opened from the
file system. Clicking a column header sorts by it (numbers numerically);
clicking again reverses.
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from .._text import printable

__all__ = ["details", "image_html", "page", "table_html"]

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1200px;color:#222;padding:0 1em}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table.sortable{border-collapse:collapse;font-size:.85em;margin:1em 0}
table.sortable th,table.sortable td{border:1px solid #ddd;padding:.25em .5em;text-align:right}
table.sortable td:first-child,table.sortable th:first-child{text-align:left}
table.sortable th{background:#f3f3f3;cursor:pointer;user-select:none;position:sticky;top:0}
table.sortable th.asc::after{content:" \\25B2"}table.sortable th.desc::after{content:" \\25BC"}
tr.diverged td{color:#a00}figure{margin:1em 0}img{max-width:100%}
.note{color:#555;font-size:.9em}ul.summary li{margin:.2em 0}
.tablebox{overflow:auto;max-height:80vh;margin:1em 0}.tablebox table.sortable{margin:0}
details{margin:.4em 0}summary{cursor:pointer;font-weight:600}
nav.toc{font-size:.9em}nav.toc a{margin-right:1em}
"""

SCRIPT = """
(function(){
  function key(text){var v=parseFloat(text);return isNaN(v)?text.toLowerCase():v;}
  function sortTable(table,col,dir){
    var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){
      var x=key(a.cells[col].textContent),y=key(b.cells[col].textContent);
      var nx=typeof x==="number",ny=typeof y==="number";
      if(nx&&!ny)return -1;if(!nx&&ny)return 1;
      return (x<y?-1:x>y?1:0)*dir;});
    rows.forEach(function(r){body.appendChild(r);});
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      th.classList.remove("asc","desc");if(i===col)th.classList.add(dir>0?"asc":"desc");});
  }
  window.learnactSort=sortTable;
  document.querySelectorAll("table.sortable").forEach(function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      th.addEventListener("click",function(){
        var dir=th.classList.contains("asc")?-1:1;sortTable(table,i,dir);});});});
  if(location.hash==="#selftest"){
    var out=[];document.querySelectorAll("table.sortable").forEach(function(table,t){
      var th=table.tHead.rows[0].cells[1];th.click();
      var first=Array.prototype.map.call(table.tBodies[0].rows,function(r){
        return r.cells[1].textContent;});
      th.click();
      var second=Array.prototype.map.call(table.tBodies[0].rows,function(r){
        return r.cells[1].textContent;});
      out.push({table:t,rows:table.tBodies[0].rows.length,asc:first,desc:second});});
    var pre=document.createElement("pre");pre.id="selftest";
    pre.textContent=JSON.stringify(out);document.body.appendChild(pre);
  }
})();
"""


def _cell(v) -> str:
    if v is pd.NA:
        return "–"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e4):
            return f"{v:.3g}"
        return f"{v:.4f}"
    return html.escape(printable(str(v)))


def table_html(df: pd.DataFrame, table_id: str, row_class: pd.Series | None = None) -> str:
    """A sortable HTML table of ``df``."""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for i, row in enumerate(df.itertuples(index=False)):
        cls = f' class="{row_class.iloc[i]}"' if row_class is not None and row_class.iloc[i] else ""
        rows.append(f"<tr{cls}>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>")
    # a box of its own: a wide table scrolls sideways, a long one under its sticky header
    return (f'<div class=tablebox><table class="sortable" id="{html.escape(table_id)}">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>")


def details(summary: str, body: str, open_: bool = False) -> str:
    """A collapsible section: ``summary`` (plain text) always shows, ``body`` (HTML) on
    a click, or from the start when ``open_``."""
    return (f"<details{' open' if open_ else ''}><summary>{html.escape(printable(summary))}"
            f"</summary>{body}</details>")


def image_html(path: Path, caption: str, relative_to: Path | None = None) -> str:
    """A figure: linked from the page at ``relative_to`` (the page's folder, which must
    hold ``path``), or, when ``relative_to`` is ``None``, embedded as a data URI."""
    caption = html.escape(printable(caption))
    if relative_to is None:
        mime = "image/svg+xml" if path.suffix == ".svg" else "image/png"
        src = f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"
    else:
        src = html.escape(quote(path.relative_to(relative_to).as_posix()))
    # lazy: 53 activations' closed sections hold a few hundred figures
    return (f'<figure><img alt="{caption}" loading="lazy" src="{src}">'
            f"<figcaption class=note>{caption}</figcaption></figure>")


# control characters other than tab and newline: never meaningful in a page
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def page(title: str, sections: list[str]) -> str:
    """The whole document; control characters from names in any section are escaped."""
    text = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
            f"<h1>{html.escape(title)}</h1>{''.join(sections)}"
            f"<script>{SCRIPT}</script></body></html>")
    return _CONTROLS.sub(lambda m: repr(m.group())[1:-1], text)
