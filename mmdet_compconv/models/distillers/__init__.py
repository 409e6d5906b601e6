from .compconv_distiller import CompConvDistiller, check_same_normalisation
from .structure import check_student_fits_teacher, residual_blocks
from .teacher_checkpoint import load_teacher_checkpoint

__all__ = ['CompConvDistiller', 'check_same_normalisation', 'check_student_fits_teacher', 'load_teacher_checkpoint',
           'residual_blocks']
