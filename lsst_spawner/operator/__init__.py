"""The kopf operator of operator mode: builds, polices and audits LabServers.

:mod:`.build` is pure (a LabServer, its template, the menu and the hub's Secret →
the lab's objects, or a rejection); :mod:`.handlers` is kopf's edge.
"""
