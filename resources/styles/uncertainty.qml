<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- DeepProspect ensemble uncertainty: 0 where the models agree, 0.5 where they split evenly (the largest
     standard deviation of probabilities, and the largest share of models disagreeing with the ensemble). -->
<qgis version="3.22.0" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" nodataColor=""
                    classificationMin="0" classificationMax="0.5">
      <rasterTransparency/>
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
                         maximumValue="0.5" labelPrecision="3">
          <item alpha="255" value="0" label="0 · models agree" color="#f2f0f7"/>
          <item alpha="255" value="0.125" label="0.125" color="#cbc9e2"/>
          <item alpha="255" value="0.25" label="0.25" color="#9e9ac8"/>
          <item alpha="255" value="0.375" label="0.375" color="#756bb1"/>
          <item alpha="255" value="0.5" label="0.5 · models split evenly" color="#54278f"/>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0" colorizeRed="255" colorizeGreen="128"
                   colorizeBlue="128" colorizeStrength="100"/>
    <rasterresampler maxOversampling="2"/>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
