"""The Hugging Face Hub: model cards, staging a student's folder and pushing it (`publish`)."""
