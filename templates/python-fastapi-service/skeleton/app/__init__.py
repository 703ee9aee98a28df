"""The ${{ values.name }} service: summarizes text with an LLM reached through the Paved platform gateway."""
