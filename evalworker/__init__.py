"""The evaluation worker: a Celery app that imports only evaluation and models_zoo.

It executes uploaded detectors, so it is started with no database settings at all and never imports
Django. It reads the artifact and images from the storage locations in each message and reports
progress and results as messages to the platform worker (queue ``platform``).
"""
