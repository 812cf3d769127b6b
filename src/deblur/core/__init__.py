"""The lowest layer: errors, atomic files and locks, safe small-file reads, registries, schema checks,
limits, and the typed settings dataclasses (settings.py) that deblur.config validates YAML into.
Pure: these modules import nothing of deblur outside core/."""
