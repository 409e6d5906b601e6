from .channel_norm_mse import ChannelNormMSELoss

__all__ = ['ChannelNormMSELoss']
