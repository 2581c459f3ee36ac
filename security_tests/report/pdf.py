def write_pdf(assessment, path):
    path.write_bytes(b"")
