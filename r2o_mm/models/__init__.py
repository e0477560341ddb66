from .data_preprocessor import R2ODataPreprocessor
from .r2o import R2O, SUPERPIXELS_ONLY

__all__ = ['R2O', 'R2ODataPreprocessor', 'SUPERPIXELS_ONLY']
