"""Reading spec text: files with source positions, safe expressions, evaluated field types."""
