"""Gatekeeper's URLs, and after them the floor view the gate is compared with."""

from django.urls import path

from bench.floor_app import floor
from gatekeeper.urls import urlpatterns as product_urlpatterns

urlpatterns = [*product_urlpatterns, path("bench/floor", floor)]
