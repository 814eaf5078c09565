<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- DeepProspect evidence grids (IDW, density, distance, evidence stacks): band 1 on a magma ramp from low (dark) to
     high (light); nodata transparent. The 0..1 values below are placeholders: on load the ramp is stretched to the
     band's 2–98 % cumulative cut. -->
<qgis version="3.22" styleCategories="Symbology">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" nodataColor=""
                    classificationMin="0" classificationMax="1">
      <minMaxOrigin>
        <limits>CumulativeCut</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" minimumValue="0"
                         maximumValue="1" labelPrecision="3">
          <item value="0" label="0" color="#000004" alpha="255"/>
          <item value="0.25" label="0.25" color="#51127c" alpha="255"/>
          <item value="0.5" label="0.5" color="#b73779" alpha="255"/>
          <item value="0.75" label="0.75" color="#fc8961" alpha="255"/>
          <item value="1" label="1" color="#fcfdbf" alpha="255"/>
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
