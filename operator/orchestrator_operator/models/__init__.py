"""Models of our custom resources: the single source of the CRD schemas."""
