"""Evaluations without fine-tuning: CUB-200-2011 segmentation and k-NN."""
