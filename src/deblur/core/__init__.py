"""The lowest layer: errors, atomic files and locks, safe small-file reads, registries, schema checks,
limits. Pure: these modules import nothing of deblur outside core/."""
