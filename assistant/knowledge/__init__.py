"""The knowledge base: documents, embeddings, the Chroma store and the answer retriever."""
