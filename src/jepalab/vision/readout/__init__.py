"""Reading a trained run: frozen embeddings (:mod:`.embeddings`), evaluation against baselines (:mod:`.evaluation`)
and the λ/ρ statistics of image directions under a method's masks (:mod:`.view_stats`)."""
