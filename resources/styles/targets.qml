<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- DeepProspect target zones: red outlines, no fill, labelled with their rank (1 = best). -->
<qgis styleCategories="Symbology|Labeling" version="3.22.0" labelsEnabled="1">
  <renderer-v2 type="singleSymbol" symbollevels="0" forceraster="0" referencescale="-1" enableorderby="0">
    <symbols>
      <symbol force_rhr="0" clip_to_extent="1" type="fill" name="0" alpha="1">
        <layer enabled="1" class="SimpleFill" locked="0" pass="0">
          <Option type="Map">
            <Option value="0,0,0,0" type="QString" name="color"/>
            <Option value="no" type="QString" name="style"/>
            <Option value="178,24,43,255" type="QString" name="outline_color"/>
            <Option value="solid" type="QString" name="outline_style"/>
            <Option value="0.6" type="QString" name="outline_width"/>
            <Option value="MM" type="QString" name="outline_width_unit"/>
            <Option value="bevel" type="QString" name="joinstyle"/>
          </Option>
        </layer>
      </symbol>
    </symbols>
  </renderer-v2>
  <labeling type="simple">
    <settings calloutType="simple">
      <text-style fieldName="rank" isExpression="0" fontSize="10" fontSizeUnit="Point" fontWeight="75" textColor="178,24,43,255" textOpacity="1">
        <text-buffer bufferDraw="1" bufferSize="1" bufferSizeUnits="MM" bufferColor="255,255,255,255" bufferNoFill="1" bufferOpacity="1" bufferJoinStyle="128"/>
      </text-style>
      <placement placement="1" polygonPlacementFlags="2" centroidWhole="0" centroidInside="0" priority="5"/>
      <rendering drawLabels="1" obstacle="1" obstacleType="1" obstacleFactor="1" labelPerPart="0" displayAll="0" maxNumLabels="2000"/>
    </settings>
  </labeling>
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
  <layerGeometryType>2</layerGeometryType>
</qgis>
