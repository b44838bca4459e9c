"""The live census twin (pure): the model, and census figures computed from it."""
