"""The record chain (decode, prepare, group, render or reject) and the sample-payload preview."""
