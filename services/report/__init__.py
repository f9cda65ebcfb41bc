"""The daily executive report: the previous day in an A4 PDF, emailed each morning."""
