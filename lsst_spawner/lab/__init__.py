"""Pure builders of a lab's Kubernetes objects: no I/O here."""
