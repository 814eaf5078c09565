<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- DeepProspect ensemble class: 1 = prospective by the ensemble rule (red), 0 = not (light grey). -->
<qgis styleCategories="Symbology" version="3.22.0">
  <pipe>
    <rasterrenderer opacity="1" band="1" nodataColor="" type="paletted" alphaBand="-1">
      <colorPalette>
        <paletteEntry value="0" label="not prospective" color="#e0e0e0" alpha="255"/>
        <paletteEntry value="1" label="prospective" color="#d7191c" alpha="255"/>
      </colorPalette>
    </rasterrenderer>
    <brightnesscontrast gamma="1" contrast="0" brightness="0"/>
    <huesaturation grayscaleMode="0" saturation="0" colorizeBlue="128" colorizeRed="255" invertColors="0"
                   colorizeOn="0" colorizeStrength="100" colorizeGreen="128"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
