"""`make bench`: measured speed, size, memory and accuracy of the deployed model."""
