<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- DeepProspect anomaly classes (zhang2021 colours: high red, moderate yellow, low blue; background transparent).
     Labels are for the default limits 5,15,30; the algorithm relabels the classes from the limits it used. -->
<qgis styleCategories="Symbology" version="3.22.0">
  <pipe>
    <rasterrenderer opacity="1" band="1" nodataColor="" type="paletted" alphaBand="-1">
      <colorPalette>
        <paletteEntry value="0" label="background (30–100 %)" color="#000000" alpha="0"/>
        <paletteEntry value="1" label="top 5 %" color="#d7191c" alpha="255"/>
        <paletteEntry value="2" label="5–15 %" color="#ffd92f" alpha="255"/>
        <paletteEntry value="3" label="15–30 %" color="#2b83ba" alpha="255"/>
        <paletteEntry value="4" label="class 4" color="#abd9e9" alpha="255"/>
        <paletteEntry value="5" label="class 5" color="#d9d9d9" alpha="255"/>
        <paletteEntry value="6" label="class 6" color="#f0f0f0" alpha="255"/>
      </colorPalette>
    </rasterrenderer>
    <brightnesscontrast gamma="1" contrast="0" brightness="0"/>
    <huesaturation grayscaleMode="0" saturation="0" colorizeBlue="128" colorizeRed="255" invertColors="0" colorizeOn="0" colorizeStrength="100" colorizeGreen="128"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
