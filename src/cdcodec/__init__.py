"""cdcodec"""
