"""Strings of documents refused by name or by content (issue 29): file names that are not UTF-8, DOCX with a
DTD; and the Dataset generation tab's summary when a doc set fails to load."""

from tools.core.locales import s as _s

STRINGS = {
    "docs.name_not_utf8": _s(
        "文件名不是有效的 UTF-8(字节 0x{byte}),切片无法标明来源,未读取。"
        "请把文件改成 UTF-8 文件名(如 convmv -f gbk -t utf8 --notest 文件名)。",
        "file name is not valid UTF-8 (byte 0x{byte}), so its slices could not name their source; not read. "
        "Rename the file to a UTF-8 name (e.g. convmv -f latin1 -t utf8 --notest NAME)",
    ),
    "docs.docx_dtd": _s(
        "DOCX 中的 {part} 含有 DTD 声明(<!DOCTYPE>),已拒绝:不允许实体声明(可能膨胀到数 GB,或读取本机文件),"
        "Word 也从不写入。请用 Word 或 LibreOffice 重新保存为 .docx。",
        "DOCX part {part} has a DTD (<!DOCTYPE>); refused: entity declarations are not allowed (they can expand "
        "to gigabytes or read local files) and Word never writes them. Re-save the file as .docx in Word or LibreOffice",
    ),
    "docs.docset_not_loaded": _s(
        "未显示文档集:读取或切片失败,原因见错误提示。",
        "No document set shown: it could not be read or sliced; the error message says why.",
    ),
}
