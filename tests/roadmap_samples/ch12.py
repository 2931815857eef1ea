"""Sample inputs for chapter 12 (category): its rows are 'eager' (morphisms, functors, monoids and learners are
Python objects and higher-order functions), so none are needed; the jittable pieces are checked in
tests/test_category.py."""
SAMPLES: dict = {}
