"""localcluster"""
