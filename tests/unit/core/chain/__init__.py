"""The record chain: decode -> prepare -> group -> render, or a dead letter naming its stage."""
