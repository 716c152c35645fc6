"""Tests of the deployment artefacts in deploy/ and .dockerignore."""
