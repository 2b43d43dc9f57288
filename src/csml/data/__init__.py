"""Journey-stage data layer: typed records, dataset sources, validation and the Lightning data module."""
