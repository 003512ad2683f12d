"""Dataset audit: broken files, odd images, empty class folders and duplicate pictures.

`python -m mer_lightning.audit data.root=PATH` prints the findings and writes audit.json;
every training run logs the one-line summary and can drop duplicates (data.dedup=true).
"""

from mer_lightning.core.data.audit import AuditReport, DuplicateGroup, Entry, build_report, scan

__all__ = ["AuditReport", "DuplicateGroup", "Entry", "build_report", "scan"]
