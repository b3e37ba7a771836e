"""Physics-based synthetic HiSS-Cube generator.

The synthetic cube stands in for real SDSS data on machines without it. Every object is built
from a small physical model rather than from noise with a trend: a stellar-mass function and
volume-limited redshifts pass through the SDSS target selection; star formation follows the
main sequence or a quenched population; stellar populations, dust, nebular lines, distance and
redshift give a spectral energy distribution; a bulge and a disk (and, for quasars, a point
source) spread that light over the sky; the 3" fibre sees only the seeing-convolved centre while
the image sees everything, through the real SDSS filter curves, with SDSS-like sky noise. The
MPA-JHU-like labels then carry a known per-object uncertainty, so the noise floor of the study
is known.

The package holds one step of that model per module:

- ``_constants``: the physical, survey and instrument constants with their sources;
- ``_cosmology``: distances and volumes (FlatLambdaCDM, H0=70, Om0=0.3);
- ``_dust``: the Calzetti et al. (2000) and Cardelli et al. (1989) attenuation curves;
- ``_templates``: rest-frame stellar-population and quasar templates and their resampling;
- ``_photometry``: the SDSS filter curves, band fluxes of lines, templates and components;
- ``_population``: masses, redshifts, the SDSS selection, star formation, dust, sizes;
- ``_lines``: narrow emission lines (star formation, retired galaxies, AGN);
- ``_spectra``: observed-frame component spectra, quasar broad lines, Lyman-alpha forest;
- ``_neighbours``: neighbouring galaxies and stars in the cutouts;
- ``_fibre``: the 3" fibre aperture, fibre fractions and the fibre spectrum;
- ``_images``: Sersic rendering, PSF, sky and detector noise of the cutouts;
- ``_spectrograph``: sky, throughput, spectrum noise and masked pixels;
- ``_measurements``: Halpha and Dn4000 measured on the fibre spectrum;
- ``_labels``: object types and FLAGs, label widths, MPA-JHU-like posterior summaries;
- ``_tables``: the spectrum (header and label) table and the truth table;
- ``_block``: one block of objects, from the population to arrays and tables;
- ``_cube``: :func:`simulate_objects` and :func:`make_synthetic_cube`.
"""

from ._cube import make_synthetic_cube, simulate_objects

__all__ = ["make_synthetic_cube", "simulate_objects"]
