"""Documents: reading files of a doc set, the Markdown heading tree, and slicing into token-bounded pieces."""
