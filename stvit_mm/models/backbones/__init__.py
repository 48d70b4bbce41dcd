from .stvit_r_swin import STViTRSwin

__all__ = ['STViTRSwin']
