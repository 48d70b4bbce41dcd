from .backbones import STViTRSwin

__all__ = ['STViTRSwin']
