from .channel_norm_mse import ChannelNormMSELoss
from .pkd import PKDLoss, SigmoidKDLoss

__all__ = ['ChannelNormMSELoss', 'PKDLoss', 'SigmoidKDLoss']
