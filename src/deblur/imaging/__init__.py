"""Images: reading and writing with every format rule, headers and metadata, tiling, output planning,
alignment of hand-held pairs and the metric card. Imports core/ only."""
