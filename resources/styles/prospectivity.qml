<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- DeepProspect prospectivity map: probability 0..1 on a viridis ramp (perceptually uniform, colour-blind safe);
     nodata cells are transparent. -->
<qgis version="3.22" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" nodataColor=""
                    classificationMin="0" classificationMax="1">
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" minimumValue="0"
                         maximumValue="1" labelPrecision="1">
          <item value="0" label="0.0" color="#440154" alpha="255"/>
          <item value="0.1" label="0.1" color="#482475" alpha="255"/>
          <item value="0.2" label="0.2" color="#414487" alpha="255"/>
          <item value="0.3" label="0.3" color="#355f8d" alpha="255"/>
          <item value="0.4" label="0.4" color="#2a788e" alpha="255"/>
          <item value="0.5" label="0.5" color="#21918c" alpha="255"/>
          <item value="0.6" label="0.6" color="#22a884" alpha="255"/>
          <item value="0.7" label="0.7" color="#44bf70" alpha="255"/>
          <item value="0.8" label="0.8" color="#7ad151" alpha="255"/>
          <item value="0.9" label="0.9" color="#bddf26" alpha="255"/>
          <item value="1" label="1.0" color="#fde725" alpha="255"/>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" invertColors="0" colorizeOn="0" colorizeRed="255"
                   colorizeGreen="128" colorizeBlue="128" colorizeStrength="100"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
