"""The networks and their inputs and outputs: the ViT (:mod:`.vit`), its attention kernels (:mod:`.attention`), the
multi-block and random masks (:mod:`.masks`) and the pooled read-outs of its tokens (:mod:`.features`)."""
