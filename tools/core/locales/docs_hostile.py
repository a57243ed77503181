"""Strings of hostile or unusable documents: links out of a doc set, zip bombs, scanned PDFs, pipes."""

from tools.core.locales import s as _s

STRINGS = {
    "docs.link_outside": _s(
        "链接指向文档集之外({target}),已拒绝:文档集里的文件会被发送给 API 服务。",
        "link leaves the document set (-> {target}); refused, since a document set's files are sent to the API provider",
    ),
    "docs.link_repeat": _s(
        "指向文档集内已列出的文件夹的链接,其中的文件已在 {listed} 下列出。",
        "link to a folder already in the document set; its files are listed under {listed}",
    ),
    "docs.not_regular_file": _s(
        "不是普通文件(管道、套接字或设备),不读取。",
        "not a regular file (a pipe, socket or device); not read",
    ),
    "docs.cannot_list": _s("无法读取文件夹:{reason}", "cannot read folder: {reason}"),
    "docs.docx_part_too_big": _s(
        "DOCX 中的 {part} 解压后超过 {limit} MB({size} MB),可能是压缩炸弹,已拒绝。",
        "DOCX part {part} unpacks to more than {limit} MB ({size} MB); refused as a possible zip bomb",
    ),
    "docs.docx_total_too_big": _s(
        "DOCX 解压后共超过 {limit} MB({size} MB),可能是压缩炸弹,已拒绝。",
        "DOCX unpacks to more than {limit} MB in all ({size} MB); refused as a possible zip bomb",
    ),
    "docs.pdf_no_text": _s(
        "没有文字(扫描件?):PDF 中提取不到任何文字;请先做 OCR(如 ocrmypdf)再放入文档集。",
        "no text (scanned?): nothing could be extracted from the PDF; run OCR on it (e.g. ocrmypdf) and add the result",
    ),
    "docs.too_deep": _s(
        "嵌套过深,无法处理({reason});其他文件照常切片。",
        "nested too deeply to process ({reason}); the other files are sliced as usual",
    ),
}
