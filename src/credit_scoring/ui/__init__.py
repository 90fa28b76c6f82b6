"""The Gradio screen: a client of the scoring service that draws its answers for a loan officer."""
