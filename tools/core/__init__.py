"""The foundation every layer uses: user errors, strings in both languages, work-directory paths and
atomic writes, networking helpers. Imports nothing else of the project."""
