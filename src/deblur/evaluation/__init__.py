"""Evaluation: scores beside the blurred input and the baselines, the resumable journal, the report
figures, and the export-format benchmark. Never imports training/ (its sibling)."""
