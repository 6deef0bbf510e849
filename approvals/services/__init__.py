"""The engine: the only code that changes workflow state (see DESIGN.md, "Layers")."""
